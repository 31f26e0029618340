"""The eager quantization workflow: observers, qconfig, fusion, prepare, convert."""
