"""selfrecon.groups"""
