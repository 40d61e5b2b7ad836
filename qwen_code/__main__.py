from qwen_code.cli import main

raise SystemExit(main())
