"""The web page of a trained run (`imgclf serve`): classifying uploaded files with the
preprocessing `imgclf predict` uses, the model card, examples, the error pictures, and the
self-contained folder `imgclf export format=space` writes."""
