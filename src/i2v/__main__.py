from i2v.cli import main

main()
