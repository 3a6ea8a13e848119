from pmrfusion.cli import main

main()
