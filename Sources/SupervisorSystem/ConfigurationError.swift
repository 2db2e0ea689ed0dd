@_exported import struct Arbiter.ConfigurationError
