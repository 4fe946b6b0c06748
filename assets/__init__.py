"""The arena's assets (made by ``make_assets.py`` in this folder): a package only so that an installed
copy of the demos carries the files, as ``spacetime_game_demos.assets``."""
