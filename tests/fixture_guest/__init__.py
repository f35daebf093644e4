"""The fixture guest: a tiny UEFI app whose behaviour mode.txt chooses (see fixture.c)."""
