import ArgumentParser
import CartridgeKernels
import CartridgeModel
import Foundation
import Logging

OpenBLASSetup.reexecWithFastKernelsIfNeeded()
LoggingSystem.bootstrap { label in
    var h = StreamLogHandler.standardError(label: label)
    let level = ProcessInfo.processInfo.environment["CARTRIDGES_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    h.logLevel = level
    return h
}
CartridgeCommand.main()
