"""Moving models between MIA and other formats."""
