import ArgumentParser
import CartridgeKernels
import CartridgeModel
import Foundation

OpenBLASSetup.reexecWithFastKernelsIfNeeded()
BenchCommand.main()
