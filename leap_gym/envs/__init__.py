"""One subpackage per benchmark; each is imported only when its env is made."""
