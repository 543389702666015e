package main

import "flag"

// update makes the golden-file tests of this package rewrite their files
// in testdata/ instead of comparing.
var update = flag.Bool("update", false, "rewrite the golden files in testdata/")
