"""selfrecon.cli"""
