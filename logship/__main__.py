from logship.cli import main

raise SystemExit(main())
