from masque.cli.app import main

main()
