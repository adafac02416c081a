"""selfrecon.data"""
