"""CTSR training package: student network, safetensors I/O, export, golden vectors."""
