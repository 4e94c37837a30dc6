"""Who is asking: people's names, and (later) the questioner encoder and speaker identification."""
