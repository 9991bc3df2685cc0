from export_action.cli import main

main()
