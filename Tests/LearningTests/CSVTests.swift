import Foundation
import Testing
@testable import Learning

@Suite struct CSVImportTests {
    @Test func wrongColumnCountReportsLine() throws {
        let url = Fixtures.write("a,b,label\n1,2,0\n3,4,1\n5,6\n7,8,1\n")
        #expect(throws: DataError.wrongColumnCount(file: url.path, line: 4, expected: 3, found: 2)) {
            try TabularCSV.load(url, options: .init(labelColumn: "label"))
        }
    }

    @Test func nonNumericValueReportsLineAndColumn() throws {
        let url = Fixtures.write("a,b,label\n1,2,0\n3,x7,1\n")
        #expect(throws: DataError.nonNumericValue(file: url.path, line: 3, column: 2, columnName: "b", value: "x7")) {
            try TabularCSV.load(url, options: .init(labelColumn: "label"))
        }
    }

    @Test func emptyFileAndHeaderOnlyAreErrors() throws {
        let empty = Fixtures.write("")
        #expect(throws: DataError.emptyFile(file: empty.path)) { try TabularCSV.load(empty, options: .init()) }
        let headerOnly = Fixtures.write("a,label\n")
        #expect(throws: DataError.emptyFile(file: headerOnly.path)) { try TabularCSV.load(headerOnly, options: .init()) }
    }

    @Test func missingValuesBecomeNaN() throws {
        let url = Fixtures.write("a,b,label\n1,,0\nNA,2.5,1\r\n nan ,-1e-3,0\n")
        let d = try TabularCSV.load(url, options: .init())
        #expect(d.rowCount == 3)
        #expect(d.columns[0][0] == 1 && d.columns[1][0].isNaN)
        #expect(d.columns[0][1].isNaN && d.columns[1][1] == 2.5)
        #expect(d.columns[0][2].isNaN && d.columns[1][2] == -0.001)
        #expect(d.labels == [0, 1, 0])
    }

    @Test func categoricalColumnsAreCodedAndReusedForTestFiles() throws {
        let train = Fixtures.write("region,size,user,label\nMapo,50,u1,1\n\"Gang, nam\",60,u2,0\nMapo,70,u1,0\n")
        let options = TabularCSVOptions(labelColumn: "label", groupColumn: "user", categoricalColumns: ["region"])
        let d = try TabularCSV.load(train, options: options)
        #expect(d.schema.names == ["region", "size"])
        #expect(d.schema.features[0].kind == .categorical)
        #expect(d.schema.features[0].categories == ["Mapo", "Gang, nam"])
        #expect(d.columns[0] == [0, 1, 0])
        #expect(d.groups![0] == d.groups![2] && d.groups![0] != d.groups![1])
        // Columns in another order and an unseen category: matched by name, unseen → NaN.
        let test = Fixtures.write("size,region,user,label\n55,Jongno,u3,0\n65,Mapo,u3,1\n")
        let t = try TabularCSV.load(test, options: options, schema: d.schema)
        #expect(t.columns[0][0].isNaN && t.columns[0][1] == 0)
        #expect(t.columns[1] == [55, 65])
    }

    @Test func undeclaredTextColumnIsAnError() throws {
        let url = Fixtures.write("region,label\nMapo,1\n")
        #expect(throws: DataError.nonNumericValue(file: url.path, line: 2, column: 1, columnName: "region", value: "Mapo")) {
            try TabularCSV.load(url, options: .init())
        }
    }

    @Test func missingLabelColumnNamesTheAlternatives() throws {
        let url = Fixtures.write("a,y\n1,0\n")
        #expect(throws: DataError.missingColumn(file: url.path, column: "label", available: ["a", "y"])) {
            try TabularCSV.load(url, options: .init())
        }
    }

    @Test func badLabelIsReported() throws {
        let url = Fixtures.write("a,label\n1,0\n2,2\n")
        #expect(throws: DataError.invalidLabel(file: url.path, line: 3, column: 2, value: "2")) {
            try TabularCSV.load(url, options: .init())
        }
    }

    @Test func errorMessagesTellWhatToDo() {
        let e = DataError.nonNumericValue(file: "f.csv", line: 9, column: 2, columnName: "region", value: "Mapo")
        #expect(e.description.contains("f.csv:9"))
        #expect(e.description.contains("--categorical region"))
    }

    @Test func datasetCSVRoundTripsExactly() throws {
        let d = Fixtures.mixedData(rows: 200)
        let url = Fixtures.temporaryDirectory().appendingPathComponent("d.csv")
        try d.writeCSV(to: url)
        let back = try TabularCSV.load(url, options: .init(labelColumn: "label", groupColumn: "group"))
        #expect(back.labels == d.labels)
        #expect(back.groups == d.groups)
        for f in 0..<d.featureCount {
            for r in 0..<d.rowCount {
                let a = d.columns[f][r], b = back.columns[f][r]
                #expect(a == b || (a.isNaN && b.isNaN))
            }
        }
    }

    @Test func aLineLongerThanTheLimitIsRefusedWithItsNumber() throws {
        // A header, one good row, then 2 MiB without a newline (like a binary file).
        var bytes = Array("a,label\n1,0\n".utf8)
        bytes += [UInt8](repeating: 0x41, count: 2 << 20)
        #expect(throws: DataError.lineTooLong(file: "big.csv", line: 3, limit: CSVTable.maxLineBytes)) {
            try CSVTable(bytes: bytes, file: "big.csv")
        }
        #expect(DataError.lineTooLong(file: "big.csv", line: 3, limit: 1 << 20).description
                == "big.csv:3: the line is longer than 1048576 bytes; this is not a CSV file with one record per line (check the file and its line endings).")
        // Exactly at the limit is still a line.
        let header = Array("a".utf8) + [UInt8](repeating: 0x61, count: CSVTable.maxLineBytes - 1) + Array("\n1\n".utf8)
        #expect(try CSVTable(bytes: header, file: "edge.csv").rowCount == 1)
    }

    @Test func aHeaderWithoutNewlineIsRefusedOnLineOne() throws {
        let url = Fixtures.write(String(repeating: "x", count: 3 << 20))
        #expect(throws: DataError.lineTooLong(file: url.path, line: 1, limit: CSVTable.maxLineBytes)) {
            try TabularCSV.load(url, options: .init())
        }
    }

    @Test func aFileOver2GiBIsATypedErrorNotATrap() throws {
        // Sparse: takes no disk space, and is refused before it is read.
        let url = Fixtures.temporaryDirectory().appendingPathComponent("huge.csv")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        try handle.truncate(atOffset: UInt64(Int32.max) + 10)
        try handle.close()
        #expect(throws: DataError.fileTooLarge(file: url.path, bytes: Int(Int32.max) + 10, limit: CSVTable.maxFileBytes)) {
            try CSVTable(contentsOf: url)
        }
        #expect(DataError.fileTooLarge(file: "h.csv", bytes: 3_000_000_000, limit: CSVTable.maxFileBytes).description
                == "h.csv: the file has 3000000000 bytes, more than the 2147483646 a CSV table may have; split it (e.g. `split -l`) or sample it before loading.")
    }
}
