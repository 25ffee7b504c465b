"""What only a notebook has: the IPython magics and the ipywidgets model picker."""
