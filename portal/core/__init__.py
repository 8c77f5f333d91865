"""What every feature stands on: the declarative base, time, domain errors, tokens, audit."""
