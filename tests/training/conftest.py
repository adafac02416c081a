import os
import sys

# the helper module _training_toys sits next to the tests (pytest runs in importlib mode)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
