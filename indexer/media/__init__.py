"""Media: sniffing, validation and decoding of images, videos and documents into views."""
