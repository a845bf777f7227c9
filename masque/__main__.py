from masque.cli.entry import main

main()
