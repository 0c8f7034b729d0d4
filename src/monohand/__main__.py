from monohand.cli import main

main()
