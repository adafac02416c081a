"""selfrecon.theory"""
