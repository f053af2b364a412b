import Foundation
import Testing
@_spi(CLI) @testable import LeNetKit

/// The `lenet` executable as a user runs it: exit codes, one-line errors,
/// and a train → eval → resume round trip on a small CIFAR-format directory.
struct CLITests: UsesTemporaryDirectories {
    let temporaries = TemporaryDirectories()

    func lenet(_ arguments: [String], in directory: URL? = nil) throws -> LenetRun {
        try runLenet(arguments, in: directory)
    }

    /// A CIFAR-10 binary directory with `train` records of the squares
    /// data in each training batch file and `test` in the test batch.
    static func makeCIFAR(_ dir: URL, train: Int = 200, test: Int = 100) throws {
        func records(_ data: ImageDataset) -> Data {
            var bytes: [UInt8] = []
            for i in 0..<data.count {
                bytes.append(data.labels[i])
                bytes += data.images[i * data.imageSize..<(i + 1) * data.imageSize]
            }
            return Data(bytes)
        }
        let trainRecords = records(try TrainingTests.squares(count: train, seed: 1))
        for name in CIFAR10.fileNames(split: .train) { try trainRecords.write(to: dir.appendingPathComponent(name)) }
        try records(try TrainingTests.squares(count: test, seed: 2)).write(to: dir.appendingPathComponent("test_batch.bin"))
    }

    /// Bad input: one line on stderr naming the flag or file, exit 1, no trap.
    func assertFails(_ arguments: [String], mentions parts: [String], in directory: URL? = nil,
                     sourceLocation: SourceLocation = #_sourceLocation) throws {
        let run = try lenet(arguments, in: directory)
        #expect(run.status == 1, "lenet \(arguments.joined(separator: " ")): \(run.stderr)", sourceLocation: sourceLocation)
        let lines = run.stderr.split(separator: "\n")
        #expect(lines.count == 1, "expected one error line, got: \(run.stderr)", sourceLocation: sourceLocation)
        #expect(run.stderr.hasPrefix("lenet: error: "), "\(run.stderr)", sourceLocation: sourceLocation)
        for part in parts {
            #expect(run.stderr.contains(part), "'\(run.stderr)' does not mention '\(part)'", sourceLocation: sourceLocation)
        }
    }

    /// A configuration that cannot fit is refused before it allocates, in
    /// one line naming the flag, what it needs and what is available.
    /// `lenet time --inference` lists the forward-only path's steps, fused
    /// where the CPU has AVX2/FMA, and a pass time.
    @Test func testTimeInferenceListsTheSteps() throws {
        let run = try lenet(["time", "--inference", "--batch-size", "3", "--iterations", "2", "--threads", "1"])
        #expect(run.status == 0, "\(run.stderr)")
        let lines = run.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("cifar-lenet, batch 3, forward only") ?? false, "\(run.stdout)")
        let steps = lines.dropFirst(2).filter { !$0.hasPrefix("whole pass") }.map { $0.split(separator: " ").first.map(String.init) ?? "" }
        if CPUFeatures.avx2FMA {
            #expect(steps == ["conv1+pool1+relu1", "conv2+pool2+relu2", "fc1+relu3", "fc2+relu4", "fc3"], "\(run.stdout)")
        } else {
            #expect(steps.count == 11, "\(run.stdout)")
        }
        #expect(lines.last?.hasPrefix("whole pass ") ?? false, "\(run.stdout)")
    }

    @Test(.disabledUnderSanitizers) func testMemoryRefusedBeforeItIsSpent() throws {
        // 100 million images of 3×32×32: about 2 TB of activations, more than any machine.
        try assertFails(["time", "--batch-size", "100000000"],
                        mentions: ["--batch-size 100000000: needs about ", " TB, ", " available ("])
        // 10,000 training images at batch 1,000,000 (a batch of 10,000): about 2.2 GB, under a 1.5 GB address-space limit.
        let dir = try temporaryDirectory()
        var record = [UInt8](repeating: 0, count: 3073)
        record[0] = 3
        let batch = Data([[UInt8]](repeating: record, count: 2000).flatMap { $0 })
        for i in 1...5 { try batch.write(to: dir.appendingPathComponent("data_batch_\(i).bin")) }
        try batch.prefix(100 * 3073).write(to: dir.appendingPathComponent("test_batch.bin"))
        let script = "ulimit -v 1500000 && exec \"$0\" train --data \"$1\" --batch-size 1000000 --epochs 1"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", script, try lenetExecutable().path, dir.path]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = Pipe()
        try process.run()
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1, "\(stderr)")
        let lines = stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(stderr)")
        #expect(stderr.hasPrefix("lenet: error: --batch-size 1000000: needs about "), "\(stderr)")
        #expect(stderr.contains(" available (ulimit -v)"), "\(stderr)")
    }

    @Test func testBadInputGivesOneClearLine() throws {
        let dir = try temporaryDirectory()
        try Self.makeCIFAR(dir)
        let data = dir.path
        try assertFails(["train", "--data", data, "--batch-size", "0"], mentions: ["--batch-size", "must be > 0"])
        try assertFails(["train", "--data", data, "--lr=-1"], mentions: ["--lr", "positive"])
        try assertFails(["train", "--data", data, "--lr"], mentions: ["--lr"])
        try assertFails(["train", "--data", data, "--optimizer", "lbfgs"], mentions: ["lbfgs"])
        try assertFails(["train", "--data", data, "--mean", "0.5,x"], mentions: ["--mean"])
        try assertFails(["train", "--data", data, "--std", "0,0,0"], mentions: ["std", "> 0"])
        try assertFails(["frobnicate"], mentions: ["frobnicate"])
        try assertFails(["train", "--data", data, "--threads", "0"], mentions: ["--threads"])
        try assertFails(["train", "--data", data, "--ema", "1"], mentions: ["--ema: must be in (0, 1), got 1.0"])
        try assertFails(["train", "--data", data, "--crop-padding", "2"], mentions: ["--crop-padding: pads the random crop of --augment"])
        try assertFails(["train", "--data", data, "--augment", "--crop-padding", "40"], mentions: ["--crop-padding: padding must be in 0...32, got 40"])
        try assertFails(["train", "--data", data + "/nope"], mentions: ["nope", "no such directory"])
        try assertFails(["train", "--data", data, "--output", data + "/missing/ck.safetensors"],
                        mentions: ["--output", "does not exist"])
        // Output paths of the wrong kind are refused before any data is read.
        let aFile = dir.appendingPathComponent("data_batch_1.bin").path
        try assertFails(["train", "--data", data + "/nope", "--report", aFile], mentions: ["--report", "is a file; expected a directory"])
        try assertFails(["eval", "--data", data + "/nope", "--weights", aFile, "--report", aFile], mentions: ["--report", "is a file"])
        try assertFails(["train", "--data", data + "/nope", "--log-json", data], mentions: ["--log-json", "is a directory"])
        try assertFails(["eval", "--data", data, "--weights", aFile, "--logits", data], mentions: ["--logits", "is a directory"])
        try assertFails(["train", "--data", data, "--model", "lenet5", "--epochs", "1"], mentions: ["1×32×32", "3×32×32"])
        try assertFails(["eval", "--data", data, "--weights", data + "/none.safetensors"], mentions: ["none.safetensors"])
        // A batch file whose size is not a whole number of records.
        let broken = dir.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: broken, withIntermediateDirectories: true)
        try Self.makeCIFAR(broken)
        let handle = try FileHandle(forWritingTo: broken.appendingPathComponent("data_batch_2.bin"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data([1, 2, 3]))
        try handle.close()
        try assertFails(["train", "--data", broken.path], mentions: ["data_batch_2.bin", "3073"])
        // No --data and no ./data: how to get CIFAR-10 and Fashion-MNIST.
        let empty = try temporaryDirectory()
        try assertFails(["train"], mentions: ["cifar-10-binary.tar.gz", "apt-get install dataset-fashion-mnist"], in: empty)
    }

    /// A network described in a file: `summary --json` writes one, `train
    /// --model FILE` trains it, and eval, summary and resume read it back
    /// from the checkpoint with no --model. Bad descriptions give one line
    /// naming the file, the layer and the field.
    @Test func testNetworkDescriptionFiles() throws {
        let dir = try temporaryDirectory()
        try Self.makeCIFAR(dir)
        let summary = try lenet(["summary", "--model", "cifar-lenet-bn", "--json"])
        #expect(summary.status == 0, "\(summary.stderr)")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(summary.stdout.utf8)) as? [String: Any])
        json["name"] = "narrow"
        var layers = try #require(json["layers"] as? [[String: Any]])
        layers[0]["out_channels"] = 8
        layers[1]["num_features"] = 8
        layers[4]["in_channels"] = 8
        json["layers"] = layers
        let file = dir.appendingPathComponent("narrow.json")
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        let ck = dir.appendingPathComponent("narrow.safetensors").path
        let train = try lenet(["train", "--data", dir.path, "--model", file.path, "--epochs", "1", "--batch-size", "20",
                               "--output", ck, "--threads", "2"])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stderr.hasPrefix("training narrow ("), "\(train.stderr)")
        let shown = try lenet(["summary", "--weights", ck])
        #expect(shown.stdout.hasPrefix("narrow: input 3×32×32, 10 classes"), "\(shown.stdout)")
        #expect(shown.stdout.contains("bn1    BatchNorm2d"), "\(shown.stdout)")
        let eval = try lenet(["eval", "--data", dir.path, "--weights", ck, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let resumed = try lenet(["train", "--data", dir.path, "--resume", ck, "--epochs", "2", "--batch-size", "20",
                                 "--output", ck, "--threads", "2"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming after epoch 1"), "\(resumed.stderr)")
        try assertFails(["train", "--data", dir.path, "--resume", ck, "--model", "cifar-lenet", "--epochs", "3"],
                        mentions: ["narrow.safetensors", "holds 'narrow', this run trains 'cifar-lenet'"])

        layers[4]["in_channels"] = 0
        json["layers"] = layers
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        try assertFails(["summary", "--model", file.path], mentions: ["narrow.json: layer 5 'conv2': in_channels: must be at least 1, got 0"])
        layers[4]["in_channels"] = 16
        json["layers"] = layers
        try JSONSerialization.data(withJSONObject: json).write(to: file)
        try assertFails(["train", "--data", dir.path, "--model", file.path], mentions: ["narrow.json: conv2: expects 16 input channels, got 8"])
        try Data("{\"layers\": [".utf8).write(to: file)
        try assertFails(["summary", "--model", file.path], mentions: ["narrow.json: not valid JSON"])
        try assertFails(["summary", "--model", "alexnet"], mentions: ["--model: unknown model 'alexnet'"])
    }

    @Test func testTrainEvalResumeRoundTrip() throws {
        let dir = try temporaryDirectory()
        try Self.makeCIFAR(dir)
        let ck = dir.appendingPathComponent("ck.safetensors").path
        let log = dir.appendingPathComponent("log.jsonl").path
        let train = try lenet(["train", "--data", dir.path, "--epochs", "1", "--batch-size", "20",
                               "--output", ck, "--log-json", log, "--threads", "1"])
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.hasPrefix("epoch 1/1  train loss "), "\(train.stdout)")
        #expect(FileManager.default.fileExists(atPath: ck + ".state"))
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: log))) as? [String: Any]
        #expect(record?["epoch"] as? Int == 1)
        #expect(record?["test_accuracy"] as? Double != nil)

        let eval = try lenet(["eval", "--data", dir.path, "--weights", ck, "--json"])
        #expect(eval.status == 0, "\(eval.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(eval.stdout.utf8)) as? [String: Any]
        let accuracy = try #require(json?["accuracy"] as? Double)
        #expect((json?["per_class"] as? [String: Double])?.count == 10)
        #expect(json?["count"] as? Int == 100)
        // The same figure the training run's own evaluation printed.
        #expect(record?["test_accuracy"] as? Double == accuracy)

        // --logits: every test image's logits, whose argmax gives the accuracy above.
        let logitsPath = dir.appendingPathComponent("logits.safetensors").path
        let kept = try lenet(["eval", "--data", dir.path, "--weights", ck, "--logits", logitsPath])
        #expect(kept.status == 0, "\(kept.stderr)")
        let logitsFile = try SafetensorsFile.read(path: logitsPath)
        let logits = try #require(logitsFile["logits"]), labels = try #require(logitsFile["labels"])
        #expect(logits.shape == [100, 10])
        let right = (0..<100).filter { i in
            let row = logits.values[i * 10..<(i + 1) * 10]
            let best = row.indices.max { row[$0] < row[$1] } ?? -1
            return Float(best - i * 10) == labels.values[i]
        }.count
        #expect(Double(right) / 100 == accuracy)

        // lenet export: an ONNX model, written whole; a bad --output is refused before anything is read.
        let onnx = dir.appendingPathComponent("ck.onnx").path
        let export = try lenet(["export", "--weights", ck, "--output", onnx])
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stdout.hasPrefix("wrote \(onnx): cifar-lenet, opset 13, "), "\(export.stdout)")
        #expect((try FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0 > 121_182 * 4)
        let noDirectory = try lenet(["export", "--weights", ck, "--output", dir.appendingPathComponent("no/such.onnx").path])
        #expect(noDirectory.status == 1)
        #expect(noDirectory.stderr.hasPrefix("lenet: error: --output "), "\(noDirectory.stderr)")

        let text = try lenet(["eval", "--data", dir.path, "--weights", ck])
        #expect(text.stdout.contains("confusion matrix"), "\(text.stdout)")
        #expect(text.stdout.contains("truck"), "\(text.stdout)")  // standard names: no batches.meta.txt

        // Resume for one more epoch: equal to two epochs straight.
        let resumed = try lenet(["train", "--data", dir.path, "--epochs", "2", "--batch-size", "20",
                                 "--resume", ck, "--output", ck, "--threads", "1"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stdout.hasPrefix("epoch 2/2"), "\(resumed.stdout)")
        let straight = dir.appendingPathComponent("straight.safetensors").path
        let two = try lenet(["train", "--data", dir.path, "--epochs", "2", "--batch-size", "20", "--output", straight, "--threads", "1"])
        #expect(two.status == 0, "\(two.stderr)")
        let a = try SafetensorsFile.read(path: ck), b = try SafetensorsFile.read(path: straight)
        #expect(a.tensors == b.tensors)
        #expect(a.metadata["epoch"] == "2")
        #expect(a.metadata["model"] == "cifar-lenet")
    }

    @Test func testSummaryPrintsTheTable() throws {
        let run = try lenet(["summary", "--model", "lenet5"])
        #expect(run.status == 0)
        #expect(run.stdout.contains("60,850"), "\(run.stdout)")
        #expect(run.stdout.contains("151,600"), "\(run.stdout)")
        let cifar = try lenet(["summary"])
        #expect(cifar.stdout.contains("121,182"), "\(cifar.stdout)")
    }
}
