"""DICOMweb: the STOW-RS receiver's body parsing, its answer, and the STOW-RS client it pushes
the SRs with (docs/gateway.md, "DICOMweb")."""
