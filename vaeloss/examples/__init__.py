"""Example losses in conventions found in the wild (see README's claims table)."""
