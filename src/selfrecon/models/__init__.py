"""selfrecon.models"""
