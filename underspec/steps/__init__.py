"""The three steps (train, sweep, analyze) on top of every other layer; what they share is in
common. Entry points call these and nothing below them."""
