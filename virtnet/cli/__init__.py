"""The virtnet command line: thin, parses arguments, calls the library, prints."""
