//! sandvisor: the client library and the command-line interface.
