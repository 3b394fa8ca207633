"""The domain: criterion transforms, weights, overlay, constraints, classification (pure array functions)."""
