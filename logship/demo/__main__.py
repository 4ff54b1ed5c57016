from logship.demo.main import main

raise SystemExit(main())
