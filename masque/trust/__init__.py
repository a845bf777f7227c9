"""Trust: actors and rings (the identity check every verb calls) and the credentials broker."""
