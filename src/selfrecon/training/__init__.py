"""selfrecon.training"""
