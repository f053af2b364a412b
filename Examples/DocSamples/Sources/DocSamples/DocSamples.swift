// The samples themselves are generated into Generated/ by
// Scripts/check-doc-samples, one file per ```swift block of README.md and of
// Sources/LeNetKit/LeNetKit.docc: see that script for how a block becomes a
// file. This file only keeps the target buildable without them.
