"""MCP servers as tools: configuration (`config`), one live connection per server
(`connection`), their tools in the registry (`tools`), and the set of them a session holds
(`manager`). The MCP SDK is imported only when a server is configured."""
