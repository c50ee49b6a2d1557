from ossdrop.cli.main import main

main()
