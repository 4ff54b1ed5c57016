from logship.loggen.cli import main

raise SystemExit(main())
