from dunning.cli.main import main

main()
