"""Report generation (HTML, metrics). Generated files land in this folder and are git-ignored."""
