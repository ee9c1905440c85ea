"""Assignment: the grid directory; places each report on a household and creates its task."""
