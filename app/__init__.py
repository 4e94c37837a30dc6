"""The edges of Confidant: the Gradio web app and the ``confidant`` command line."""
