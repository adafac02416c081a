"""selfrecon.losses"""
