// The .cart file format (see docs/cart-format.md).
