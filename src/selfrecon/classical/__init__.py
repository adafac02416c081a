"""selfrecon.classical"""
