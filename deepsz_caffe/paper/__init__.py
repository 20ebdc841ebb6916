"""The paper's side: its numbers (`values`, over paper_values.json, the one place they are
typed), its prototxts (package data), synthetic layers of its shapes, MNIST, and `reproduce`."""
