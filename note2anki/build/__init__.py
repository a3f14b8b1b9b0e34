"""The build layer: how a vault is built quickly and safely, around the stage modules.

- `notes`: reading notes (parse -> extract -> render per note), from the cache or in a pool of processes;
- `cache`: what each note gave, by the note's bytes and the settings that shape cards;
- `lastbuild`: the last build's record, for builds with nothing or little to do;
- `lock`: one build at a time per vault;
- `removed`: the cards removed from the notes that may still be in Anki;
- `private`: the vault's `.note2anki/` folder.

`note2anki.pipeline.run` puts them together.
"""
