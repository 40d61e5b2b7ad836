"""Which endpoints are Alibaba Cloud's DashScope (Model Studio), and how they bill.

The one host check for the whole package: the client (DashScope headers, explicit-cache
markers), the settings (the default model) and the price table (which regions the built-in
prices are for) all ask here.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DASHSCOPE_HOST = re.compile(
    r"^dashscope(-[a-z0-9]+)*\.aliyuncs\.com$|^([a-z0-9-]+\.)+dashscope\.aliyuncs\.com$"
)
"""dashscope.aliyuncs.com (Beijing), dashscope-intl / dashscope-us.aliyuncs.com, and any
subdomain of dashscope.aliyuncs.com (cn-hongkong., coding., coding-intl.)."""

_OTHER_BILLING = re.compile(
    r"(^|\.)dashscope\.aliyuncs\.com$|^dashscope-us\.aliyuncs\.com$"
    r"|\.cn-beijing\.maas\.aliyuncs\.com$"
)
"""Hosts billed other than by the international (Singapore, USD) price list: Beijing (CNY;
its Model Studio workspaces too), US, Hong Kong (cn-hongkong.dashscope...), and the Coding
Plan (coding(-intl).dashscope...: a subscription)."""


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""  # lower-cased by urlsplit


def is_dashscope(url: str) -> bool:
    """True for a DashScope endpoint: dashscope(-intl|-us).aliyuncs.com, *.dashscope.aliyuncs.com.
    Only the host counts (never a path or a look-alike such as dashscope.aliyuncs.com.evil)."""
    return bool(_DASHSCOPE_HOST.search(_host(url)))


def international_prices_apply(url: str) -> bool:
    """False for endpoints billed other than by DashScope's international (USD) prices;
    True for the international endpoint and for every other host."""
    return not _OTHER_BILLING.search(_host(url))
