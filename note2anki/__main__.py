from note2anki.cli import main

main()
