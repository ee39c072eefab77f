# The modules beside this file are generated from proto/forge/training/v1 by protoc; do not edit them.
